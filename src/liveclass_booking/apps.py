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
            abstract,
            checks,  # noqa: F401
            signals,
            tasks,
        )
        from .services import waitlist

        # The waitlist entry's methods call the services, installed here so that the models
        # never import them.
        abstract.WAITLIST_OPERATIONS.update(
            offer_seats=waitlist.offer_seats,
            accept_offer=waitlist.accept_offer,
            expire_offer=waitlist.expire_offer,
        )

        # Committed outbox events enqueue a dispatcher pass (connected here, so that the
        # services never import the tasks module).
        signals.outbox_written.connect(
            tasks.enqueue_dispatch, dispatch_uid="liveclass_booking.enqueue_dispatch"
        )
        # An offer's deadline schedules its expiry task (where the backend can defer).
        signals.offer_deadline_set.connect(
            tasks.schedule_offer_expiry, dispatch_uid="liveclass_booking.schedule_offer_expiry"
        )
        # A new or re-pointed busy calendar enqueues its first sync.
        signals.busy_source_changed.connect(
            tasks.enqueue_busy_sync, dispatch_uid="liveclass_booking.enqueue_busy_sync"
        )
