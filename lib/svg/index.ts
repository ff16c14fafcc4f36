/** The project's one SVG plotter: line and grouped bar charts (benchmarks, console), and the axis helpers every chart uses. */
export { barChart, lineChart } from "./charts.js";
export type { Series } from "./charts.js";
export { escapeXml, niceTicks } from "./axis.js";
