"""One module a page (or a group of pages), each an APIRouter the console app includes."""

from . import admin, alerts, customers, events, golive, invoices, overview, session

ROUTERS = [session.router, overview.router, customers.router, invoices.router, events.router, golive.router,
           alerts.router, admin.router]
