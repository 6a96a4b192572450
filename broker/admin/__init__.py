"""The merchant's operations on their store, Flask-free: the app's install and callbacks
(:mod:`.installs`), the admin session carried in a signed token (:mod:`.sessions`), bearer
tokens of the admin API (:mod:`.tokens`), and the edits of a stored store's connections and
settings with the rules of ``broker check`` (:mod:`.stores`, :mod:`.checks`)."""
