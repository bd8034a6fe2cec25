"""The model registry side of the life cycle: MLflow tracking and registration, the champion alias,
the local MLflow server, and the sync agent that rolls the champion out to edge devices.

Everything here imports mlflow lazily (inside functions): the edge runtime never imports this package's
mlflow parts, and a machine without the `mlflow` extra gets one line naming the install command.
"""
