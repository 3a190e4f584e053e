"""Mail: every email to a customer through the outbox, consent and preferences, the contact
budget and quiet hours, the signed links that bring customers back, email previews, and the
email services' delivery webhooks."""
