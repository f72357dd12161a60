"""One file per dataset (imported by introspect.data); see introspect.data.base for what a source declares."""
