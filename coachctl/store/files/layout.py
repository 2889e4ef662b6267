"""Where the file store keeps things under `HOME/sessions/`: every name in one place.

Each kind of lock has its own folder (a namespace), so no session id, workflow id or
internal name can collide with another's lock: a session named `events` or `index` locks
`.locks/session/events.lock`, never the events log's `.locks/store/events.lock`.
"""

from __future__ import annotations

SESSION_SUFFIX = ".json"
EVENTS_FILE = "events.jsonl"
INDEX_DIR = ".index"
INDEX_FILE = "index.sqlite"
PACKS_DIR = "packs"
CHOICES_DIR = "choices"
LOCKS_DIR = ".locks"
LEASES_DIR = ".leases"
MOVED_FILE = "MOVED"
GITIGNORE = ".gitignore"

#: Lock namespaces: sub-folders of LOCKS_DIR.
LOCK_SESSION = "session"
LOCK_PACK = "pack"
LOCK_STORE = "store"  # the store's own singletons: "index", "events"

#: Written once into sessions/ (never over a person's edits): derived state stays out of git.
#: The session files and hand choices (choices/) are the truth a repository may carry.
GITIGNORE_TEXT = """\
# Written by coachctl. Derived state: rebuilt from the session files when missing.
/.index/
/.locks/
/.leases/
/.tmp-*
/packs/
/events.jsonl
"""
