// Stand-in for development: build.py replaces this module with the real precache list, each
// language's own scripts, and a version derived from the content of every asset.

export const VERSION = "dev";
export const PRECACHE = [];
export const BY_LANGUAGE = {};
