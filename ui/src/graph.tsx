// The node graph: laid out by dagre once per document shape, drawn as SVG, coloured by state
// (each box also says its state in words). Keyboard: Tab to a node, Enter or Space opens it.
import dagre from "@dagrejs/dagre";
import { useMemo } from "preact/hooks";

export interface GraphNode {
  id: string;
  type?: string;
  needs: string[];
}

export interface NodeView {
  state: string;
  text: string;
}

const WIDTH = 176;
const HEIGHT = 54;

interface Layout {
  width: number;
  height: number;
  boxes: Map<string, { x: number; y: number }>;
  edges: { from: string; to: string; d: string }[];
}

function layoutOf(nodes: GraphNode[]): Layout {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 46, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const known = new Set(nodes.map((n) => n.id));
  for (const n of nodes) g.setNode(n.id, { width: WIDTH, height: HEIGHT });
  for (const n of nodes) for (const need of n.needs) if (known.has(need)) g.setEdge(need, n.id);
  dagre.layout(g);
  const boxes = new Map<string, { x: number; y: number }>();
  for (const id of g.nodes()) {
    const box = g.node(id);
    boxes.set(id, { x: box.x - WIDTH / 2, y: box.y - HEIGHT / 2 });
  }
  const edges = g.edges().map((e) => {
    const points = g.edge(e).points ?? [];
    const d = points.map((p: { x: number; y: number }, i: number) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
    return { from: e.v, to: e.w, d };
  });
  const graph = g.graph();
  return { width: Math.max(graph.width ?? 0, WIDTH + 16), height: Math.max(graph.height ?? 0, HEIGHT + 16), boxes, edges };
}

/** The state that stands for a node's iterations (the most urgent one wins). */
export function combinedState(states: string[]): string {
  if (!states.length) return "pending";
  const order = ["failed", "in-progress", "waiting-approval", "waiting-event", "waiting-timer", "ready", "cancelled", "pending"];
  for (const s of order) if (states.includes(s)) return s;
  return states.every((s) => s === "skipped") ? "skipped" : "finished";
}

export function Graph(props: {
  nodes: GraphNode[];
  views: Map<string, NodeView>;
  selected?: string | null;
  onSelect?: (id: string) => void;
  label: string;
}) {
  const shape = props.nodes.map((n) => `${n.id}<${n.needs.join(",")}`).join(";");
  const layout = useMemo(() => layoutOf(props.nodes), [shape]);
  return (
    <div class="graph-scroll">
      <svg
        class="graph"
        role="group"
        aria-label={props.label}
        width={layout.width}
        height={layout.height}
        viewBox={`0 0 ${layout.width} ${layout.height}`}
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrow" />
          </marker>
        </defs>
        {layout.edges.map((e) => (
          <path key={`${e.from}>${e.to}`} d={e.d} class="edge" marker-end="url(#arrow)" />
        ))}
        {props.nodes.map((n) => {
          const box = layout.boxes.get(n.id);
          if (!box) return null;
          const view = props.views.get(n.id) ?? { state: "pending", text: "pending" };
          const open = () => props.onSelect?.(n.id);
          return (
            <g
              key={n.id}
              class={`node st-${view.state}${props.selected === n.id ? " selected" : ""}`}
              transform={`translate(${box.x},${box.y})`}
              // lower case: an SVG element takes no camel-cased tabIndex attribute
              {...{ tabindex: 0 }}
              role="button"
              aria-label={`node ${n.id}: ${view.text}`}
              aria-pressed={props.selected === n.id}
              data-node={n.id}
              data-state={view.state}
              onClick={open}
              onKeyDown={(ev: KeyboardEvent) => {
                if (ev.key === "Enter" || ev.key === " ") {
                  ev.preventDefault();
                  open();
                }
              }}
            >
              <rect width={WIDTH} height={HEIGHT} rx="8" />
              <text x="10" y="21" class="node-id">
                {n.id.length > 22 ? `${n.id.slice(0, 21)}…` : n.id}
              </text>
              <text x="10" y="40" class="node-state">
                {view.text}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}

/** The graph of a workflow document (`nodes[].id`, `needs`). */
export function documentNodes(document: unknown): GraphNode[] {
  const nodes = (document as { nodes?: unknown })?.nodes;
  if (!Array.isArray(nodes)) return [];
  return nodes
    .filter((n): n is { id: string; type?: string; needs?: unknown } => !!n && typeof (n as { id?: unknown }).id === "string")
    .map((n) => ({
      id: n.id,
      type: typeof n.type === "string" ? n.type : undefined,
      needs: Array.isArray(n.needs) ? n.needs.filter((x): x is string => typeof x === "string") : typeof n.needs === "string" ? [n.needs] : [],
    }));
}
