"""The portal: server-rendered pages for a city official, a person and a partner
(docs/portal.md). Every asset is served by the API itself: no CDN, no front-end build."""
