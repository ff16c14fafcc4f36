export { StopMatcher } from "./stop-matcher.js";
