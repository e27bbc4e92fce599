#!/usr/bin/env node
/* Checks Grafana dashboard JSON files against the dashboard schema Grafana
 * publishes as @grafana/schema (the TypeScript types generated from its CUE
 * kinds: the Dashboard, its panels and variables, and the options and field
 * config of each panel plugin used), with the TypeScript compiler:
 *
 *   node check-dashboard.cjs [--self-test] DASHBOARD.json...
 *
 * Each file becomes a TypeScript module in which the dashboard, every
 * panel's options, field config and queries are object literals checked with
 * `satisfies` against those types, so a misspelled or unknown key, a wrong
 * type or a value outside an enum is an error (TypeScript checks excess
 * properties of literals).  JSON has no enums, so string enums are compared
 * by value (Json<T> below).  Panel types other than those listed in
 * PANEL_TYPES are refused: their options would go unchecked.  The
 * queries' own fields are not in @grafana/schema; the shapes below follow
 * the Prometheus and ClickHouse (grafana-clickhouse-datasource 4.x) data
 * source plugins.  Also checked: schemaVersion is the package's current one.
 *
 * --self-test also breaks each dashboard in known ways and fails unless each
 * broken copy is refused: the check must be able to fail.
 *
 * Run from the directory holding node_modules (make dashboards-check does). */
'use strict';

const fs = require('fs');
const path = require('path');
const ts = require('typescript');
const schema = require('@grafana/schema');

const PANELCFG = '@grafana/schema/dist/esm/raw/composable';
const PANEL_TYPES = {
  timeseries: `${PANELCFG}/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen`,
  stat: `${PANELCFG}/stat/panelcfg/x/StatPanelCfg_types.gen`,
  table: `${PANELCFG}/table/panelcfg/x/TablePanelCfg_types.gen`,
  'state-timeline': `${PANELCFG}/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen`,
  barchart: `${PANELCFG}/barchart/panelcfg/x/BarChartPanelCfg_types.gen`,
};
const STAT_LIKE = new Set(['stat']); /* no custom field config */

const PRELUDE = `
import type * as S from '@grafana/schema';
${Object.entries(PANEL_TYPES)
  .map(([t, m], i) => `import type * as P${i} from '${m}';`)
  .join('\n')}

/* JSON spells a string enum member by its value. */
type Json<T> = T extends string
  ? \`\${T}\`
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

type Base = Json<Omit<S.DataQuery, 'datasource'>>;
type PromQuery = Base & {
  datasource: { type: 'prometheus'; uid: string };
  expr: string;
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  interval?: string;
  editorMode?: 'code' | 'builder';
};
/* grafana-clickhouse-datasource 4.x, raw SQL editor: format 0 with
 * queryType timeseries, or 1 with table. */
type ClickHouseQuery = Base & {
  datasource: { type: 'grafana-clickhouse-datasource'; uid: string };
  editorType: 'sql';
  rawSql: string;
  pluginVersion?: string;
} & ({ format: 0; queryType: 'timeseries' } | { format: 1; queryType: 'table' });
type Query = PromQuery | ClickHouseQuery;
`;

function literal(value) {
  return `(${JSON.stringify(value, null, 1)})`;
}

/* The TypeScript module checking one dashboard; errors found before
 * compiling (unknown panel types) are pushed to problems. */
function moduleFor(dash, problems) {
  const lines = [PRELUDE, `export const dashboard = ${literal(dash)} satisfies Json<S.Dashboard>;`];
  const panels = [];
  for (const p of dash.panels || []) {
    panels.push(p);
    if (p.type === 'row') panels.push(...(p.panels || []));
  }
  const names = Object.keys(PANEL_TYPES);
  panels.forEach((p, n) => {
    if (p.type === 'row') return;
    const i = names.indexOf(p.type);
    if (i < 0) {
      problems.push(`panel ${p.id} "${p.title}": type "${p.type}" is not one this check knows (${names.join(', ')})`);
      return;
    }
    const id = `panel${n}`;
    lines.push(`// panel ${p.id} "${p.title}" (${p.type})`);
    lines.push(`export const ${id}_options = ${literal(p.options || {})} satisfies Json<Partial<P${i}.Options>>;`);
    const custom = p.fieldConfig && p.fieldConfig.defaults && p.fieldConfig.defaults.custom;
    if (custom !== undefined) {
      if (STAT_LIKE.has(p.type)) problems.push(`panel ${p.id} "${p.title}": a ${p.type} panel has no custom field config`);
      else lines.push(`export const ${id}_custom = ${literal(custom)} satisfies Json<Partial<P${i}.FieldConfig>>;`);
    }
    lines.push(`export const ${id}_targets = ${literal(p.targets || [])} satisfies Query[];`);
  });
  return lines.join('\n');
}

/* The compiler's complaints about one module, as "file:line: message". */
function compile(source, label) {
  const file = path.resolve(`dashboard-check-${process.pid}.ts`);
  const options = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile;
  host.readFile = (f) => (path.resolve(f) === file ? source : readFile(f));
  const fileExists = host.fileExists;
  host.fileExists = (f) => path.resolve(f) === file || fileExists(f);
  const getSourceFile = host.getSourceFile;
  host.getSourceFile = (f, v, ...rest) =>
    path.resolve(f) === file ? ts.createSourceFile(f, source, v, true) : getSourceFile(f, v, ...rest);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n  ');
    if (!d.file) return `${label}: ${msg}`;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const text = d.file.text.split('\n')[line].trim();
    return `${label}: generated line ${line + 1} (${text.slice(0, 120)}): ${msg}`;
  });
}

function check(dash, label) {
  const problems = [];
  const current = schema.defaultDashboard.schemaVersion;
  if (dash.schemaVersion !== current)
    problems.push(`${label}: schemaVersion ${JSON.stringify(dash.schemaVersion)}, the current one (@grafana/schema) is ${current}`);
  const source = moduleFor(dash, problems);
  return problems.map((p) => (p.startsWith(label) ? p : `${label}: ${p}`)).concat(compile(source, label));
}

/* Broken copies that the check must refuse. */
const BREAKAGES = {
  'a misspelled panel key': (d) => {
    const p = d.panels.find((x) => x.type !== 'row');
    p.gridpos = p.gridPos;
    delete p.gridPos;
  },
  'a string schemaVersion': (d) => {
    d.schemaVersion = String(d.schemaVersion);
  },
  'a legend placement outside its enum': (d) => {
    const p = d.panels.find((x) => x.type === 'timeseries');
    p.options.legend.placement = 'middle';
  },
  'an unknown stat option': (d) => {
    d.panels.find((x) => x.type === 'stat').options.colourMode = 'value';
  },
  'a Prometheus query without expr': (d) => {
    const t = d.panels.flatMap((x) => x.targets || []).find((q) => q.datasource.type === 'prometheus');
    delete t.expr;
  },
  'a ClickHouse query with a numeric rawSql': (d) => {
    const t = d.panels.flatMap((x) => x.targets || []).find((q) => q.rawSql);
    t.rawSql = 1;
  },
  'a time series ClickHouse query with the table format': (d) => {
    const t = d.panels.flatMap((x) => x.targets || []).find((q) => q.queryType === 'timeseries');
    t.format = 1;
  },
  'a variable of an unknown type': (d) => {
    d.templating.list[0].type = 'datasourcee';
  },
};

function main(argv) {
  const selfTest = argv.includes('--self-test');
  const files = argv.filter((a) => a !== '--self-test');
  if (files.length === 0) {
    console.error('usage: check-dashboard.cjs [--self-test] DASHBOARD.json...');
    return 64;
  }
  let failed = false;
  for (const f of files) {
    const dash = JSON.parse(fs.readFileSync(f, 'utf8'));
    const problems = check(dash, f);
    if (problems.length) {
      failed = true;
      console.error(problems.join('\n'));
    } else {
      console.log(`${f}: valid (@grafana/schema ${require('@grafana/schema/package.json').version}, schemaVersion ${dash.schemaVersion})`);
    }
    if (!selfTest) continue;
    for (const [what, breakIt] of Object.entries(BREAKAGES)) {
      const broken = JSON.parse(JSON.stringify(dash));
      breakIt(broken);
      const found = check(broken, `${f} with ${what}`);
      if (found.length === 0) {
        failed = true;
        console.error(`${f}: self-test: ${what} was not refused`);
      } else {
        console.log(`self-test: ${what}: refused (${found[0].split('\n')[0].slice(0, 160)})`);
      }
    }
  }
  return failed ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
