"""Invoice documents: the PDF a customer receives and the e-invoices (Peppol BIS UBL, Factur-X CII)
a receiver's system reads, all from one view of a stored invoice (model.invoice_view)."""
