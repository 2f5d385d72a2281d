from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LiveClassBookingConfig(AppConfig):
    name = "liveclass_booking"
    label = "liveclass_booking"
    verbose_name = _("Live-class booking")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks on import.
        from . import (
            checks,  # noqa: F401
            signals,
            tasks,
        )

        # Committed outbox events enqueue a dispatcher pass (connected here, so that the
        # services never import the tasks module).
        signals.outbox_written.connect(
            tasks.enqueue_dispatch, dispatch_uid="liveclass_booking.enqueue_dispatch"
        )
