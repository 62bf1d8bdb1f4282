"""Runtime support shared by the jobs and the operator: device, distributed init, the pod
environment contract and the metrics catalogue.

This package file stays empty of imports on purpose: `import sailvl.runtime` must not pull
in torch, prometheus_client or anything heavy. Import the submodule you need
(`from sailvl.runtime import metrics`).
"""
