"""The services the onboarding workflow calls, as one folder plugin. Each handler
deduplicates by the idempotency key the engine sends, as a real service should."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Context, Event, Plugin, hookimpl

KEY = "orrery-idempotency-key"


class OnboardingServices(Plugin):
    name = "onboarding_services"

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, str] = {}
        self.done: dict[str, Any] = {}  # idempotency key -> the first answer

    @hookimpl
    async def orrery_start(self, ctx: Context) -> None:
        handlers = {
            "accounts.create": self.create_account,
            "accounts.delete": self.delete_account,
            "payments.setup": self.setup_payment,
            "payments.cancel": self.cancel_payment,
            "notify.send": self.notify,
        }
        for topic, handler in handlers.items():
            ctx.bus.subscribe(topic, self.once(handler))
        self.log = ctx.log

    def once(self, handler: Any) -> Any:
        def handle(event: Event) -> Any:
            key = (event.headers or {}).get(KEY) or event.id
            if key not in self.done:
                self.done[key] = handler(event.data or {})
            return self.done[key]

        return handle

    def create_account(self, data: dict[str, Any]) -> dict[str, Any]:
        account_id = f"acct-{len(self.accounts) + 1}"
        self.accounts[account_id] = {"name": data.get("name"), "email": data.get("email")}
        return {"id": account_id}

    def delete_account(self, data: dict[str, Any]) -> dict[str, Any]:
        self.accounts.pop(str(data.get("id")), None)
        return {"deleted": data.get("id")}

    def setup_payment(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("plan") == "unknown":
            return {"error": "no such plan"}
        self.payments[str(data["account"])] = str(data.get("plan") or "basic")
        return {"account": data["account"], "plan": self.payments[str(data["account"])]}

    def cancel_payment(self, data: dict[str, Any]) -> dict[str, Any]:
        self.payments.pop(str(data.get("account")), None)
        return {"cancelled": data.get("account")}

    def notify(self, data: dict[str, Any]) -> dict[str, Any]:
        self.log.info("to %s: %s", data.get("to"), data.get("text"))
        return {"sent": True}
