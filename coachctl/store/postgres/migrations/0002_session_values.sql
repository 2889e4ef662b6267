-- coachctl schema 2: every session summary keeps `values`, the variable values of a session
-- that recorded no trust_scope ({} for one that did). A window on a trust scope counts such
-- sessions' rows when their values match it (store/scopes.py): sessions from before the
-- workflow had a trust_scope count toward the values they had. Backfilled from each
-- session's JSON by the rule of engine/scope.py `values_of`: its string `variables`, then
-- its string `scope` values over them.
UPDATE coachctl_sessions s
SET summary = s.summary || jsonb_build_object('values',
    CASE WHEN coalesce(s.summary->>'scope', '') <> '' THEN '{}'::jsonb
    ELSE coalesce((SELECT jsonb_object_agg(e.key, e.value)
                   FROM jsonb_each(CASE WHEN jsonb_typeof(s.body->'variables') = 'object'
                                        THEN s.body->'variables' ELSE '{}'::jsonb END) e
                   WHERE jsonb_typeof(e.value) = 'string'), '{}'::jsonb)
      || coalesce((SELECT jsonb_object_agg(e.key, e.value)
                   FROM jsonb_each(CASE WHEN jsonb_typeof(s.body->'scope') = 'object'
                                        THEN s.body->'scope' ELSE '{}'::jsonb END) e
                   WHERE jsonb_typeof(e.value) = 'string'), '{}'::jsonb)
    END)
WHERE NOT (s.summary ? 'values');
