// A small client of the example project's API, typed by openapi-typescript (default options)
// from its schema: list sessions, book a seat, read an error's code. It is type-checked, not
// run: tests/test_generated_clients.py generates schema.d.ts beside it and runs
// `tsc --noEmit --strict`.
import type { components, paths } from "./schema";

type Session = components["schemas"]["Session"];
type Booking = components["schemas"]["Booking"];
type ApiError = components["schemas"]["Error"];
type SessionQuery = NonNullable<paths["/api/booking/sessions/"]["get"]["parameters"]["query"]>;
type SessionPage =
  paths["/api/booking/sessions/"]["get"]["responses"][200]["content"]["application/json"];
type BookingCreate =
  paths["/api/booking/bookings/"]["post"]["requestBody"]["content"]["application/json"];
type Created = paths["/api/booking/bookings/"]["post"]["responses"][201]["content"]["application/json"];

const base = "http://127.0.0.1:8000";

function headers(token: string): Record<string, string> {
  return { Accept: "application/json", Authorization: `Token ${token}` };
}

export async function listSessions(token: string): Promise<Session[]> {
  const query: SessionQuery = { has_free_seats: true, page_size: 20 };
  const search = new URLSearchParams(
    Object.entries(query).map(([key, value]) => [key, String(value)]),
  );
  const answer = await fetch(`${base}/api/booking/sessions/?${search}`, { headers: headers(token) });
  if (!answer.ok) {
    throw new Error(readError((await answer.json()) as ApiError));
  }
  const page = (await answer.json()) as SessionPage;
  // Fields of an answer are present: no undefined to rule out first.
  return page.results.filter((s) => s.seats_available > 0 && s.description.length >= 0);
}

export async function bookSeat(
  token: string,
  session: Session,
  idempotencyKey: string,
): Promise<Booking | ApiError> {
  // seats_reserved and student_note have server defaults: the body may leave them out.
  const body: BookingCreate = { booking_type: "group_session", session: session.id };
  const answer = await fetch(`${base}/api/booking/bookings/`, {
    method: "POST",
    headers: {
      ...headers(token),
      "Content-Type": "application/json",
      "Idempotency-Key": idempotencyKey,
    },
    body: JSON.stringify(body),
  });
  if (answer.status === 201) {
    const booking: Created = (await answer.json()) as Created;
    return booking;
  }
  return (await answer.json()) as ApiError;
}

export function readError(error: ApiError): string {
  switch (error.code) {
    case "session_full":
      return `full (${error.seats_available ?? 0} seats left): ${error.detail}`;
    case "invalid":
      return Object.entries(error.errors ?? {})
        .map(([field, messages]) => `${field}: ${messages.join(" ")}`)
        .join("; ");
    default:
      return `${error.code}: ${error.detail}`;
  }
}

export function describe(result: Booking | ApiError): string {
  if ("code" in result) {
    return readError(result);
  }
  const note = result.student_note.trim() || "no note";
  return `booking ${result.id} is ${result.status}: ${result.seats_reserved} seat(s), ${note}`;
}
