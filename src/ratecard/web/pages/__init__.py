"""One module a page (or a group of pages), each an APIRouter the console app includes."""

from . import admin, admin_catalog, admin_keys, alerts, customers, events, golive, invoices, overview, session

ROUTERS = [session.router, overview.router, customers.router, invoices.router, events.router, golive.router,
           alerts.router, admin.router, admin_keys.router, admin_catalog.router]
