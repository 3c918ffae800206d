// `node --import ./ts_loader.mjs script.mjs`: installs ts_hooks.mjs before the script runs.
import { register } from "node:module";

register("./ts_hooks.mjs", import.meta.url);
