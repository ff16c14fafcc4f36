#!/usr/bin/env node
// Copies the console's hand-written page, script and style beside the
// compiled console module (dist/services/edge/src/console/assets), so the
// built edge serves them without the source tree. `npm run build` runs it.
import { cpSync } from "node:fs";

cpSync("services/edge/src/console/assets", "dist/services/edge/src/console/assets", { recursive: true });
