"""The resource model's names, its 64-bit bound and human formatting (pure Python, no Django)."""

#: PostgreSQL's bigint maximum: no allocation or counter may exceed it.
BIGINT_MAX = 2**63 - 1

#: The three resources, in the order every report lists them.
RESOURCES = ("cpu_cores", "memory_bytes", "disk_bytes")

#: What a person calls each resource.
RESOURCE_LABELS = {"cpu_cores": "CPU", "memory_bytes": "memory", "disk_bytes": "disk"}

_BINARY_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_bytes(amount: int) -> str:
    """`8589934592` -> `8.0 GiB`: binary units with one decimal, as support staff read sizes."""
    if abs(amount) < 1024:
        return f"{amount} B"
    value = float(amount)
    unit = "B"
    for unit in _BINARY_UNITS:
        value /= 1024
        if abs(value) < 1024 or unit == _BINARY_UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def human_cores(amount: int) -> str:
    return f"{amount} core" if amount == 1 else f"{amount} cores"


def human_amount(resource: str, amount: int) -> str:
    """One resource's amount as a person reads it: cores for CPU, binary units for bytes."""
    return human_cores(amount) if resource == "cpu_cores" else human_bytes(amount)
