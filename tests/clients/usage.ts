// A TypeScript integrator's use of the types openapi-typescript generates from /openapi.json
// (tests/clients/test_generated_clients.py type-checks it with `tsc --strict` beside ./schema.d.ts).
import type { components, operations } from "./schema";

type ErrorBody = components["schemas"]["ErrorBody"];
type OrgUnit = components["schemas"]["OrgUnitRead"];
type GetUnit = operations["getUnit"];

// Every failure is the one error body, declared per status.
type GetUnitAnswer =
  | GetUnit["responses"][200]["content"]["application/json"]
  | GetUnit["responses"][401]["content"]["application/json"]
  | GetUnit["responses"][404]["content"]["application/json"]
  | GetUnit["responses"][422]["content"]["application/json"];

export async function getUnit(base: string, token: string, id: number): Promise<GetUnitAnswer> {
  const answer = await fetch(`${base}/api/v1/org-units/${id}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  return (await answer.json()) as GetUnitAnswer;
}

export function isError(answer: OrgUnit | ErrorBody): answer is ErrorBody {
  return "error" in answer;
}

// `details` has a known shape: a list of issues for a malformed request, else what the rule names.
export function explain(body: ErrorBody): string {
  const { code, message, details } = body.error;
  if (Array.isArray(details)) {
    return details.map((issue) => `${issue.loc.join(".")}: ${issue.msg} (${issue.type})`).join("; ");
  }
  if (details?.current_version != null) {
    return `${code}: reload, the current version is ${details.current_version}`;
  }
  if (details?.field != null) {
    return `${code}: ${details.field}: ${message}`;
  }
  return `${code}: ${message}`;
}

// Uploads are multipart with a binary `file`; downloads declare their media types.
type EvidenceForm = operations["uploadEvidence"]["requestBody"]["content"]["multipart/form-data"];
export const evidenceFields: (keyof EvidenceForm)[] = ["file", "indicator_id", "description"];
type SubmittedWorkbook =
  operations["submissionFile"]["responses"][200]["content"]["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"];
type EvaluationsCsv = operations["exportEvaluations"]["responses"][200]["content"]["text/csv"];
export type Downloads = SubmittedWorkbook | EvaluationsCsv;

// The types are real, not `any`: these must not compile.
// @ts-expect-error an error's code is a string
export const wrongCode: ErrorBody = { error: { code: 404, message: "Not found.", details: null } };
// @ts-expect-error operation ids are the short ones, not FastAPI's long defaults
export type OldName = operations["get_unit_api_v1_org_units__unit_id__get"];
// @ts-expect-error getUnit declares no 409
export type NoConflict = GetUnit["responses"][409];
