import { stepEdges, type Step, type Transition, type Trigger, type WorkflowDefinition } from './workflow-definition.ts';

// A workflow definition as a Mermaid diagram an analyst can paste into a wiki or see in the console:
// an automation as a `flowchart TD` (trigger → steps, arrows labelled yes/no/case/approved…), a
// lifecycle as a `stateDiagram-v2` (transitions labelled with their name and roles).
// Everything taken from the definition is escaped: node ids are generated, text goes through
// Mermaid entity codes, so no title, expression or role can break (or inject into) the diagram.

const MAX_DETAIL = 60;

/** Text safe inside a quoted Mermaid label: markup-significant characters become `#code;` entities. */
export function mermaidText(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/["#&<>|[\]{};:`\\]/g, (c) => `#${c.codePointAt(0)};`);
}

const shorten = (text: string): string => (text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL - 1)}…` : text);

/** Stable, collision-free Mermaid node ids (step ids may hold `-`, and `end` is a Mermaid keyword). */
function nodeIds(names: string[], prefix: string): Map<string, string> {
  const ids = new Map<string, string>();
  const used = new Set<string>();
  for (const name of names) {
    const base = `${prefix}_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
    let id = base;
    for (let n = 2; used.has(id); n++) id = `${base}_${n}`;
    used.add(id);
    ids.set(name, id);
  }
  return ids;
}

function triggerText(t: Trigger | undefined): string {
  if (!t) return 'start';
  switch (t.type) {
    case 'event': return `when ${t.entity} is ${(t.on ?? ['created', 'updated']).join(' or ')}${t.changed ? ` (${t.changed.field} changed)` : ''}`;
    case 'schedule': return `schedule ${t.cron} (${t.timezone ?? 'UTC'})`;
    case 'dateRelative': return `${t.offset} relative to ${t.entity}.${t.field}`;
    case 'manual': return `manual${t.entity ? ` on ${t.entity}` : ''}${t.roles?.length ? ` by ${t.roles.join(', ')}` : ''}`;
    case 'webhook': return 'incoming webhook';
  }
}

/** One line saying what a step does, under its title. */
function stepDetail(step: Step): string {
  switch (step.type) {
    case 'condition': return `if ${step.if}`;
    case 'switch': return `switch on ${step.value}`;
    case 'set': return `set ${Object.keys(step.variables).join(', ')}`;
    case 'createRecord': return `create ${step.entity}`;
    case 'updateRecord': return `update ${step.entity}`;
    case 'queryRecords': return `find ${step.entity}`;
    case 'callAction': return `call ${step.action}`;
    case 'notify': return `${step.channel} to ${step.to}`;
    case 'http': return `${step.method} ${step.url}`;
    case 'wait': return step.duration ? `wait ${step.duration}` : `wait until ${step.until ?? ''}`;
    case 'approval': {
      const who = [step.assignees.role ? `role ${step.assignees.role}` : '', step.assignees.users?.length ? `${step.assignees.users.length} user(s)` : ''].filter(Boolean).join(' + ');
      const mode = typeof step.mode === 'object' ? `at least ${step.mode.atLeast}` : step.mode ?? 'any';
      return `approval by ${who} (${mode})${step.deadline ? `, deadline ${step.deadline}` : ''}`;
    }
    case 'parallel': return 'in parallel';
    case 'join': return 'join';
    case 'subWorkflow': return `run ${step.workflow}`;
    case 'renderDocument': return `document ${step.template} (${step.format ?? 'pdf'})`;
    case 'end': return step.status === 'cancelled' ? 'end (cancelled)' : 'end';
  }
}

function stepNode(id: string, nodeId: string, step: Step): string {
  const heading = mermaidText(step.title ? `${step.title} (${id})` : id);
  const label = `"${heading}<br/>${mermaidText(shorten(stepDetail(step)))}"`;
  switch (step.type) {
    case 'condition':
    case 'switch': return `${nodeId}{${label}}`;
    case 'approval': return `${nodeId}{{${label}}}`;
    case 'end': return `${nodeId}([${label}])`;
    case 'subWorkflow': return `${nodeId}[[${label}]]`;
    case 'wait': return `${nodeId}[/${label}/]`;
    case 'parallel':
    case 'join': return `${nodeId}[${label}]`;
    default: return `${nodeId}[${label}]`;
  }
}

function flowchart(def: WorkflowDefinition): string {
  const steps = Object.entries(def.steps ?? {});
  const ids = nodeIds(steps.map(([id]) => id), 's');
  const lines = ['flowchart TD', `  trigger(["${mermaidText(shorten(triggerText(def.trigger)))}"])`];
  for (const [id, step] of steps) lines.push(`  ${stepNode(id, ids.get(id) as string, step)}`);
  const link = (from: string, to: string | undefined, label: string, arrow = '-->') => {
    const target = to === undefined ? undefined : ids.get(to);
    if (!target) return; // a missing step: the validator reports it; the diagram shows what exists
    lines.push(`  ${from} ${arrow}${label ? `|"${mermaidText(label)}"|` : ''} ${target}`);
  };
  link('trigger', def.start, '');
  for (const [id, step] of steps) {
    // The parallel's arrow to its join is dotted: it is where the branches meet, not a path taken.
    for (const edge of stepEdges(step)) link(ids.get(id) as string, edge.to, edge.label, edge.kind === 'join' ? '-.->' : '-->');
  }
  return lines.join('\n') + '\n';
}

function transitionLabel(t: Transition): string {
  const roles = t.roles?.length ? ` [${t.roles.join(', ')}]` : '';
  const condition = t.condition ? ` if ${shorten(t.condition)}` : '';
  return mermaidText(`${t.title ?? t.name}${roles}${condition}`);
}

function stateDiagram(def: WorkflowDefinition): string {
  const states = def.states ?? [];
  const ids = nodeIds(states.map((s) => s.name), 'st');
  const lines = ['stateDiagram-v2'];
  for (const s of states) lines.push(`  state "${mermaidText(s.title ?? s.name)}" as ${ids.get(s.name)}`);
  for (const s of states.filter((st) => st.initial)) lines.push(`  [*] --> ${ids.get(s.name)}`);
  for (const t of def.transitions ?? []) {
    const to = ids.get(t.to);
    if (!to) continue;
    const from = t.from === '*' ? states.filter((s) => !s.final).map((s) => s.name) : t.from;
    for (const name of from) {
      const id = ids.get(name);
      if (id) lines.push(`  ${id} --> ${to} : ${transitionLabel(t)}${t.steps ? ` #9656; ${mermaidText(t.steps)}` : ''}`);
    }
  }
  for (const s of states.filter((st) => st.final)) lines.push(`  ${ids.get(s.name)} --> [*]`);
  return lines.join('\n') + '\n';
}

/** The Mermaid source of a (schema-valid) definition. */
export function toMermaid(def: WorkflowDefinition): string {
  return def.kind === 'lifecycle' ? stateDiagram(def) : flowchart(def);
}
