// TypeScript shape of a workflow definition, written by hand to match workflows/workflow.schema.json
// (the schema is the contract; these types are what code sees after the schema accepted a document).
// Also: the edges of the step graph, which the validator, the diagram and the engine all follow.

/** A CEL expression (`record.amount > 1000`); string literals inside are quoted (`'Acme'`). */
export type Expression = string;
/** Field or variable name → CEL expression. */
export type Mapping = Record<string, Expression>;
/** ISO 8601 duration: `PT15M`, `P3D`, `-P1D`. */
export type Duration = string;

export interface Retry {
  max?: number;
  backoff?: Duration;
}

export interface EventTrigger {
  type: 'event';
  entity: string;
  on?: ('created' | 'updated' | 'deleted')[];
  changed?: { field: string; to?: Expression };
  condition?: Expression;
}
export interface ScheduleTrigger {
  type: 'schedule';
  cron: string;
  timezone?: string;
}
export interface DateRelativeTrigger {
  type: 'dateRelative';
  entity: string;
  field: string;
  offset: Duration;
  condition?: Expression;
}
export interface ManualTrigger {
  type: 'manual';
  entity?: string;
  roles?: string[];
  input?: Record<string, unknown>;
}
export interface WebhookTrigger {
  type: 'webhook';
  secretEnv: string;
  input?: Record<string, unknown>;
}
export type Trigger = EventTrigger | ScheduleTrigger | DateRelativeTrigger | ManualTrigger | WebhookTrigger;
export type TriggerType = Trigger['type'];
export const TRIGGER_TYPES: readonly TriggerType[] = ['event', 'schedule', 'dateRelative', 'manual', 'webhook'];

interface StepBase {
  title?: string;
}
export interface ConditionStep extends StepBase { type: 'condition'; if: Expression; then: string; else?: string }
export interface SwitchStep extends StepBase { type: 'switch'; value: Expression; cases: Record<string, string>; default?: string }
export interface SetStep extends StepBase { type: 'set'; variables: Mapping; next?: string }
export interface CreateRecordStep extends StepBase { type: 'createRecord'; entity: string; fields: Mapping; next?: string; retry?: Retry }
export interface UpdateRecordStep extends StepBase { type: 'updateRecord'; entity: string; id: Expression; fields: Mapping; next?: string; retry?: Retry }
export interface QueryRecordsStep extends StepBase { type: 'queryRecords'; entity: string; where?: Mapping; sort?: string; limit?: number; next?: string }
export interface CallActionStep extends StepBase { type: 'callAction'; action: string; input?: Mapping; next?: string; retry?: Retry }
export interface NotifyStep extends StepBase {
  type: 'notify';
  channel: 'email' | 'sms';
  to: Expression;
  subject?: Expression;
  body: Expression;
  /** Id of an earlier renderDocument step whose document is attached. */
  attachDocument?: string;
  next?: string;
  retry?: Retry;
}
export interface HttpStep extends StepBase {
  type: 'http';
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: Expression;
  headers?: Mapping;
  body?: Expression;
  timeoutMs?: number;
  next?: string;
  retry?: Retry;
}
/** Exactly one of `duration` and `until`. */
export interface WaitStep extends StepBase { type: 'wait'; duration?: Duration; until?: Expression; next?: string }
export type ApprovalMode = 'any' | 'all' | { atLeast: number };
export interface ApprovalStep extends StepBase {
  type: 'approval';
  assignees: { role?: string; users?: string[] };
  mode?: ApprovalMode;
  subject?: Expression;
  deadline?: Duration;
  onDeadline?: string;
  approved: string;
  rejected: string;
}
export interface ParallelStep extends StepBase { type: 'parallel'; branches: string[]; join: string }
export interface JoinStep extends StepBase { type: 'join'; next?: string }
export interface SubWorkflowStep extends StepBase { type: 'subWorkflow'; workflow: string; input?: Mapping; next?: string }
export interface RenderDocumentStep extends StepBase { type: 'renderDocument'; template: string; recordId: Expression; format?: 'html' | 'pdf'; next?: string; retry?: Retry }
export interface EndStep extends StepBase { type: 'end'; status?: 'completed' | 'cancelled' }

export type Step =
  | ConditionStep | SwitchStep | SetStep | CreateRecordStep | UpdateRecordStep | QueryRecordsStep | CallActionStep | NotifyStep
  | HttpStep | WaitStep | ApprovalStep | ParallelStep | JoinStep | SubWorkflowStep | RenderDocumentStep | EndStep;
export type StepType = Step['type'];
export const STEP_TYPES: readonly StepType[] = [
  'condition', 'switch', 'set', 'createRecord', 'updateRecord', 'queryRecords', 'callAction', 'notify',
  'http', 'wait', 'approval', 'parallel', 'join', 'subWorkflow', 'renderDocument', 'end',
];

export interface LifecycleState {
  name: string;
  title?: string;
  initial?: boolean;
  final?: boolean;
  /**
   * Whether people may edit a record in this state: true (the default), false (a posted document:
   * neither edited nor deleted), or the fields that stay editable (`[dueDate, notes]`). Plugin code
   * and workflow steps still write; transitions still move it.
   */
  editable?: boolean | string[];
}
export interface Transition {
  name: string;
  title?: string;
  /** `*`: from any non-final state. */
  from: '*' | string[];
  to: string;
  roles?: string[];
  /** A permission the caller needs (`finance.invoices.post`), besides any roles. */
  permission?: string;
  condition?: Expression;
  /** JSON Schema of what the caller sends with the transition. */
  input?: Record<string, unknown>;
  /** First of the steps run when the transition is taken. */
  steps?: string;
  /**
   * A plugin action (`finance.postInvoice`) run in the transition's own transaction, right after the
   * state change: what the document does on this moment (post an entry, reserve stock). If it
   * refuses, the transition is refused and nothing is written.
   */
  action?: string;
}

export interface WorkflowDefinition {
  $schema?: string;
  /** `<plugin>.<name>`, e.g. `crm.deal-lifecycle`. */
  id: string;
  title: string;
  description?: string;
  kind: 'lifecycle' | 'automation';
  /** Plugins that must be enabled for the workflow to start. */
  requires?: string[];
  /** Plugins whose being enabled stops the workflow (another process does its job then, e.g. the warehouse invoices shipments). */
  unless?: string[];
  entity?: string;
  stateField?: string;
  states?: LifecycleState[];
  transitions?: Transition[];
  trigger?: Trigger;
  start?: string;
  steps?: Record<string, Step>;
}

/** One arrow of the step graph: where a step can go next and why. */
export interface StepEdge {
  /** The target step id. */
  to: string;
  /** The property holding the target, as a JSON pointer relative to the step (`/next`, `/cases/won`). */
  pointer: string;
  /** What the arrow means to a reader: `yes`, `no`, a case value, `approved`, `deadline`… (empty for plain `next`). */
  label: string;
  kind: 'next' | 'branch' | 'join';
}

const escapePointer = (segment: string): string => segment.replace(/~/g, '~0').replace(/\//g, '~1');
export const pointer = (...segments: (string | number)[]): string => segments.map((s) => `/${escapePointer(String(s))}`).join('');

/** Every step a step can lead to, in reading order. */
export function stepEdges(step: Step): StepEdge[] {
  const edges: StepEdge[] = [];
  const add = (to: string | undefined, ptr: string, label: string, kind: StepEdge['kind'] = 'next') => {
    if (typeof to === 'string') edges.push({ to, pointer: ptr, label, kind });
  };
  switch (step.type) {
    case 'condition':
      add(step.then, '/then', 'yes');
      add(step.else, '/else', 'no');
      break;
    case 'switch':
      for (const [value, to] of Object.entries(step.cases)) add(to, pointer('cases', value), value);
      add(step.default, '/default', 'default');
      break;
    case 'approval':
      add(step.approved, '/approved', 'approved');
      add(step.rejected, '/rejected', 'rejected');
      add(step.onDeadline, '/onDeadline', 'deadline');
      break;
    case 'parallel':
      step.branches.forEach((to, i) => add(to, pointer('branches', i), `branch ${i + 1}`, 'branch'));
      add(step.join, '/join', 'join', 'join');
      break;
    case 'end':
      break;
    default:
      add(step.next, '/next', '');
  }
  return edges;
}
