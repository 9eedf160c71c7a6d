//! Kubernetes step types, driving the kubectl binary (context, namespace, kubeconfig per step).
