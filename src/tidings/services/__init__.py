"""The service layer: every operation on tidings' resources, once, one floor below its faces.

The API (`tidings.api`), the console and the CLI parse their input, call these operations and
render what they answer; they decide nothing themselves. An operation is a plain async function

    operation(deps: Deps, actor: Actor, <typed input>) -> <domain record>

- `deps` (`services.deps.Deps`): the store, catalog, publisher, clock, URL rules, key cache.
- `actor` (`tidings.auth.Actor`): who acts (key id and kind, organization, console session,
  client address). Each operation checks the kind of key it needs and scopes every read and
  write to the actor's organization: a foreign id is a 404, exactly like a missing one.
- inputs are dataclasses or plain values (never the API's pydantic models), so a form or a
  command line can build them.
- problems are the errors of `tidings.errors`; a 422 carries `details: [{path, message}]` with
  JSON paths (`$.url`, `$.eventTypes[1]`) that a face maps back to its own fields.

Rooms: `organizations` (organizations, partners), `keys` (API keys, who a key is), `endpoints`
(+ `endpoint_rules`: the configuration rules, SSRF guard included), `replay`, `deliveries`
(history and attempts), `events` (publishing, the feed, one event), `state` (projections),
`paging` (page sizes and cursors), `console_sessions` (the browser console's sessions and
portal links), `overview` (the operator's figures). Nothing here imports FastAPI or a database
driver (an import test holds the layering).
"""
