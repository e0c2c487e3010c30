"""Optional peer (scenario 7): Flux's source-controller and kustomize-controller."""


def measure(bench):
    return {"ran": False, "note": "not measured yet"}
