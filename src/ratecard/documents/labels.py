"""The words printed on an invoice, in the languages ratecard ships (English otherwise). A PDF
template of the entity's own can print any words it likes."""

from __future__ import annotations

ENGLISH = {
    "invoice": "Invoice", "credit_note": "Credit note", "correction": "Invoice (correction)", "draft": "DRAFT",
    "number": "Number", "issue_date": "Issue date", "due_date": "Due date", "period": "Service period",
    "customer": "Customer", "seller": "From", "buyer": "Bill to", "tax_id": "VAT ID", "description": "Description",
    "quantity": "Quantity", "unit_price": "Unit price", "amount": "Amount", "subtotal": "Subtotal", "tax": "VAT",
    "total": "Total", "tax_summary": "VAT summary", "rate": "Rate", "taxable": "Taxable amount",
    "corrects": "Corrects invoice", "iban": "IBAN", "bic": "BIC", "payment": "Payment", "page": "Page",
    "tier": "Tier", "flat": "flat",
    "draft_note": "This is a draft: it is not an invoice and asks for no payment.",
}
GERMAN = {
    "invoice": "Rechnung", "credit_note": "Gutschrift", "correction": "Rechnung (Korrektur)", "draft": "ENTWURF",
    "number": "Nummer", "issue_date": "Rechnungsdatum", "due_date": "Fällig am", "period": "Leistungszeitraum",
    "customer": "Kunde", "seller": "Von", "buyer": "Rechnung an", "tax_id": "USt-IdNr.", "description": "Beschreibung",
    "quantity": "Menge", "unit_price": "Einzelpreis", "amount": "Betrag", "subtotal": "Zwischensumme", "tax": "USt.",
    "total": "Gesamt", "tax_summary": "Umsatzsteuer", "rate": "Satz", "taxable": "Nettobetrag",
    "corrects": "Korrigiert Rechnung", "iban": "IBAN", "bic": "BIC", "payment": "Zahlung", "page": "Seite",
    "tier": "Stufe", "flat": "pauschal",
    "draft_note": "Dies ist ein Entwurf: keine Rechnung und keine Zahlungsaufforderung.",
}
FRENCH = {
    "invoice": "Facture", "credit_note": "Avoir", "correction": "Facture (rectificative)", "draft": "BROUILLON",
    "number": "Numéro", "issue_date": "Date d'émission", "due_date": "Échéance", "period": "Période de service",
    "customer": "Client", "seller": "De", "buyer": "Facturé à", "tax_id": "N° TVA", "description": "Description",
    "quantity": "Quantité", "unit_price": "Prix unitaire", "amount": "Montant", "subtotal": "Sous-total", "tax": "TVA",
    "total": "Total", "tax_summary": "Récapitulatif TVA", "rate": "Taux", "taxable": "Base HT",
    "corrects": "Rectifie la facture", "iban": "IBAN", "bic": "BIC", "payment": "Paiement", "page": "Page",
    "tier": "Palier", "flat": "forfait",
    "draft_note": "Ceci est un brouillon : ce n'est pas une facture et aucun paiement n'est demandé.",
}
BY_LANGUAGE = {"en": ENGLISH, "de": GERMAN, "fr": FRENCH}


def labels_for(language: str) -> dict[str, str]:
    return BY_LANGUAGE.get(language, ENGLISH)
