"""Maps the repository's top-level folders onto the single `posgate` import name.

The hand-written code lives in `posgate/`, `gateway/`, `services/` and `clients/`; the
generated Protobuf code lives in `gen/posgate/<domain>/`. Installing them all under
`posgate.*` means nothing we ship can collide with another distribution's `gateway`,
`services` or `common` package.
"""

from __future__ import annotations

from setuptools import find_packages, setup

PROTO_DOMAINS = ("common", "orders", "inventory", "stores", "catalog", "routing", "returns", "events")
FOLDERS = {
    "posgate": "posgate",
    "posgate.gateway": "gateway",
    "posgate.services": "services",
    "posgate.clients": "clients",
    **{f"posgate.{domain}": f"gen/posgate/{domain}" for domain in PROTO_DOMAINS},
}


def _packages() -> list[str]:
    found: list[str] = []
    for name, folder in FOLDERS.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return found


setup(
    package_dir=FOLDERS,
    packages=_packages(),
    package_data={"": ["py.typed", "*.pyi", "*.ini", "*.mako", "*.json", "*.yaml"]},
)
