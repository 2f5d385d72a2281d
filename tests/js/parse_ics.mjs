// Parse iCalendar documents with ical.js for tests/calendar_parsers.py.
//
// stdin: a JSON array of .ics documents (strings). stdout: a JSON array with one normalised
// calendar per document (see parse_icaljs in tests/calendar_parsers.py). A document that does
// not parse, or that holds a time this script cannot turn into an instant (a floating time,
// a TZID without a VTIMEZONE), ends the script with status 1 and the reason on stderr.
import ICAL from "ical.js";

const EVENT_TEXT = ["uid", "status", "summary", "description", "location", "url", "related-to"];
const EVENT_TIMES = ["dtstart", "dtend", "dtstamp", "last-modified", "recurrence-id"];

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

// ical.js leaves properties it does not know (X- properties among them) as the raw text of
// the line. Their default value type is TEXT (RFC 5545 3.8.8.2), so undo its escaping.
function unescapeText(text) {
  return text.replace(/\\([\\;,nN])/g, (_, c) => (c === "n" || c === "N" ? "\n" : c));
}

// A DATE as "YYYY-MM-DD"; a DATE-TIME as the UTC instant in ISO 8601.
function timeToJSON(time, where) {
  if (time.isDate) {
    return time.toString();
  }
  const zone = time.zone;
  if (!zone || zone === ICAL.Timezone.localTimezone || zone.tzid === "floating") {
    throw new Error(`${where}: ${time.toString()} is a floating time or its TZID has no VTIMEZONE`);
  }
  return new Date(time.toUnixTime() * 1000).toISOString();
}

function valueToJSON(prop, value, where) {
  if (value instanceof ICAL.Time) {
    return { time: timeToJSON(value, where) };
  }
  if (value instanceof ICAL.Duration) {
    return { duration: value.toSeconds() };
  }
  if (value instanceof ICAL.Recur) {
    return value.toString();
  }
  if (prop.type === "unknown") {
    return unescapeText(String(value));
  }
  if (typeof value === "number") {
    return value;
  }
  return String(value);
}

function propertyToJSON(prop, where) {
  const values = prop.getValues().map((value) => valueToJSON(prop, value, `${where} ${prop.name}`));
  return values.length === 1 ? values[0] : values.map(String).join(",");
}

// Properties by name; a name that repeats maps to an array of its values in document order.
function collect(props, where) {
  const out = {};
  for (const prop of props) {
    const value = propertyToJSON(prop, where);
    if (!(prop.name in out)) {
      out[prop.name] = value;
    } else if (Array.isArray(out[prop.name])) {
      out[prop.name].push(value);
    } else {
      out[prop.name] = [out[prop.name], value];
    }
  }
  return out;
}

function single(component, name, where) {
  const props = component.getAllProperties(name);
  if (props.length > 1) {
    throw new Error(`${where}: ${name} appears ${props.length} times`);
  }
  return props.length ? props[0] : null;
}

function eventToJSON(event, where) {
  const out = {};
  for (const name of EVENT_TEXT) {
    const prop = single(event, name, where);
    out[name.replace("-", "_")] = prop ? String(prop.getFirstValue()) : null;
  }
  for (const name of EVENT_TIMES) {
    const prop = single(event, name, where);
    out[name.replace("-", "_")] = prop
      ? timeToJSON(prop.getFirstValue(), `${where} ${name}`)
      : null;
  }
  const sequence = single(event, "sequence", where);
  out.sequence = sequence ? sequence.getFirstValue() : null;
  const rrule = single(event, "rrule", where);
  out.rrule = rrule ? rrule.getFirstValue().toString() : null;
  out.x_props = collect(
    event.getAllProperties().filter((prop) => prop.name.startsWith("x-")),
    where,
  );
  return out;
}

function calendarToJSON(text, index) {
  const where = `document ${index}`;
  let jcal;
  try {
    jcal = ICAL.parse(text);
  } catch (error) {
    throw new Error(`${where}: ${error.message}`);
  }
  // One component parses to ["vcalendar", ...]; several, or none, to an array of them.
  if (!Array.isArray(jcal) || typeof jcal[0] !== "string") {
    const count = Array.isArray(jcal) ? jcal.length : 0;
    throw new Error(`${where}: expected one VCALENDAR, found ${count} components`);
  }
  const calendar = new ICAL.Component(jcal);
  if (calendar.name !== "vcalendar") {
    throw new Error(`${where}: the top-level component is ${calendar.name}, not vcalendar`);
  }
  const method = single(calendar, "method", where);
  const properties = collect(
    calendar.getAllProperties().filter((prop) => prop.name !== "method"),
    where,
  );
  const events = calendar
    .getAllSubcomponents("vevent")
    .map((event, position) => eventToJSON(event, `${where} event ${position}`));
  return { method: method ? String(method.getFirstValue()) : null, properties, events };
}

try {
  const documents = JSON.parse(await readStdin());
  if (!Array.isArray(documents)) {
    throw new Error("stdin must be a JSON array of iCalendar documents");
  }
  process.stdout.write(JSON.stringify(documents.map(calendarToJSON)));
} catch (error) {
  process.stderr.write(`ical.js: ${error.message}\n`);
  process.exitCode = 1;
}
