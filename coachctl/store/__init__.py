"""Everything coachctl keeps about sessions: one interface (`base.Store`), two stores.

`files` is the embedded default (the home's `sessions/` folder); `postgres` is the team
store. Commands, metrics and the panel talk only to `base.Store`; nothing outside a store's
own package knows its paths, lock files, byte offsets or SQL.
"""
