"""Test control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
kwok built from Go modules (build.sh) and started as loopback processes (harness.py)."""
