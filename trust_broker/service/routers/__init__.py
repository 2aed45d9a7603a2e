"""One router per resource; ``ROUTERS`` is what the app mounts."""

from trust_broker.service.routers import audit, budget, health, participants, registries, studies

ROUTERS = [health.router, studies.router, registries.router, budget.router, audit.router, participants.router]
