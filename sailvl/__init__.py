"""sailvl: the SAIL-VL recipe as a Kubernetes-native operator and job suite.

Importing this package is cheap on purpose: it pulls in neither torch, kopf nor boto3
(a test guards this). The heavy dependencies are imported inside the job modules.
"""

__version__ = "0.1.0"
