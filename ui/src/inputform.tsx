// A form generated from a workflow's `inputs` JSON Schema: one field per property of an
// object schema (strings, numbers, booleans, enums), JSON for anything else.
import { useState } from "preact/hooks";

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  description?: string;
  title?: string;
}

function kind(schema: Schema): string {
  const t = Array.isArray(schema.type) ? schema.type.find((x) => x !== "null") : schema.type;
  if (schema.enum) return "enum";
  return t === "string" || t === "number" || t === "integer" || t === "boolean" ? t : "json";
}

export function InputForm(props: { schema: unknown; onSubmit: (input: unknown) => void; submitLabel: string }) {
  const schema = (props.schema ?? {}) as Schema;
  const fields = schema.properties ? Object.entries(schema.properties) : [];
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(
      fields.map(([name, s]) => [name, s.default === undefined ? "" : kind(s) === "json" ? JSON.stringify(s.default) : String(s.default)]),
    ),
  );
  const [raw, setRaw] = useState("{}");
  const [problem, setProblem] = useState("");
  const set = (name: string, value: string) => setValues({ ...values, [name]: value });

  const submit = (e: Event) => {
    e.preventDefault();
    setProblem("");
    try {
      if (!fields.length) return props.onSubmit(raw.trim() ? JSON.parse(raw) : {});
      const input: Record<string, unknown> = {};
      for (const [name, s] of fields) {
        const v = values[name] ?? "";
        const k = kind(s);
        if (v === "" && k !== "boolean") continue;
        if (k === "number" || k === "integer") input[name] = Number(v);
        else if (k === "boolean") input[name] = v === "true";
        else if (k === "json") input[name] = JSON.parse(v);
        else if (k === "enum") input[name] = s.enum?.find((x) => String(x) === v) ?? v;
        else input[name] = v;
      }
      props.onSubmit(input);
    } catch (err) {
      setProblem(`Not valid JSON: ${(err as Error).message}`);
    }
  };

  return (
    <form class="card input-form" onSubmit={submit} aria-label="Run input">
      {fields.length ? (
        fields.map(([name, s]) => {
          const k = kind(s);
          const id = `input-${name}`;
          const required = schema.required?.includes(name);
          return (
            <div class="field" key={name}>
              <label for={id}>
                {s.title ?? name}
                {required ? " (required)" : ""}
              </label>
              {k === "boolean" ? (
                <select id={id} value={values[name] || "false"} onChange={(e) => set(name, (e.target as HTMLSelectElement).value)}>
                  <option value="false">false</option>
                  <option value="true">true</option>
                </select>
              ) : k === "enum" ? (
                <select id={id} value={values[name]} required={required} onChange={(e) => set(name, (e.target as HTMLSelectElement).value)}>
                  <option value="" />
                  {s.enum!.map((x) => (
                    <option key={String(x)} value={String(x)}>
                      {String(x)}
                    </option>
                  ))}
                </select>
              ) : k === "json" ? (
                <textarea id={id} rows={3} value={values[name]} required={required} placeholder="JSON" onInput={(e) => set(name, (e.target as HTMLTextAreaElement).value)} />
              ) : k === "string" ? (
                <input id={id} type="text" value={values[name]} required={required} onInput={(e) => set(name, (e.target as HTMLInputElement).value)} />
              ) : (
                <input
                  id={id}
                  type="number"
                  step={k === "integer" ? 1 : "any"}
                  value={values[name]}
                  required={required}
                  onInput={(e) => set(name, (e.target as HTMLInputElement).value)}
                />
              )}
              {s.description && <small class="muted">{s.description}</small>}
            </div>
          );
        })
      ) : (
        <div class="field">
          <label for="input-json">Input (JSON)</label>
          <textarea id="input-json" rows={4} value={raw} onInput={(e) => setRaw((e.target as HTMLTextAreaElement).value)} />
        </div>
      )}
      {problem && (
        <p class="error" role="alert">
          {problem}
        </p>
      )}
      <button type="submit" class="primary">
        {props.submitLabel}
      </button>
    </form>
  );
}
