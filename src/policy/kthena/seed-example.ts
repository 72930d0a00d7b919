/**
 * Seed 003's "smart autoscaling" example (智能自动扩缩容示例), verbatim: the policy `kthena` runs when
 * no config is given, so `compare --policies kthena` shows MatrixInfer as its own docs configure it.
 */
export const SEED_003_SMART_SCALING = `apiVersion: registry.matrixinfer.ai/v1alpha1
kind: AutoscalingPolicy
metadata:
  name: llm-smart-scaling
spec:
  tolerancePercent: 10
  behavior:
    scaleUp:
      panicPolicy:
        panicThresholdPercent: 150
        panicModeHold: 5m
    scaleDown:
      stabilizationWindow: 3m
---
apiVersion: registry.matrixinfer.ai/v1alpha1
kind: AutoscalingPolicyBinding
metadata:
  name: smart-scaling-binding
spec:
  policyRef:
    name: llm-smart-scaling
  scalingConfiguration:
    minReplicas: 2
    maxReplicas: 10
    target:
      targetRef:
        apiVersion: workload.matrixinfer.ai/v1alpha1
        kind: ModelInfer
        name: llm-model
    metricTargets:
      gpu_utilization: 80
      concurrent_requests: 50
`;
