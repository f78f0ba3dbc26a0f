"""`durable serve`: a durable app as a Restate deployment, on the real restate-sdk.

Imported only by the serve command (it imports restate-sdk, the extra
``durable[restate]``). :mod:`.adapter` maps definitions and wraps handlers,
:mod:`.context` is durable's ``Context`` over restate's, :mod:`.futures` its futures and
the errors both ways, :mod:`.server` runs hypercorn. docs/serve-mapping.md has the table.
"""
