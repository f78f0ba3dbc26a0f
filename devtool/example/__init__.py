"""The example app `durable dev` serves when no app is given."""
