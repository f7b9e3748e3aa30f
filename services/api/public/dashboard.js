/* global document, EventSource, requestAnimationFrame */
// The live dashboard: GET /api/v1/pilot once a minute, and every reading as it arrives through
// EventSource('/api/v1/live') (SPEC section 5). No framework, no build step.
const STALE_AFTER_INTERVALS = 3;
const REFRESH_PILOT_MS = 60_000;

const rows = new Map(); // meter id -> { meter, cells, lastSeenMs }
const tbody = document.getElementById('meters');
const feed = document.getElementById('feed');
const errorBox = document.getElementById('error');

const flowFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const totalFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 3, maximumFractionDigits: 3 });

function cell(row, className) {
  const td = document.createElement('td');
  if (className) td.className = className;
  row.append(td);
  return td;
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function rowFor(meter) {
  let entry = rows.get(meter.id);
  if (!entry) {
    const tr = document.createElement('tr');
    const id = cell(tr);
    const name = document.createElement('strong');
    const label = document.createElement('span');
    label.className = 'label';
    id.append(name, label);
    entry = {
      tr,
      cells: { name, label, site: cell(tr, 'wide'), role: cell(tr, 'wide'), online: cell(tr), lastSeen: cell(tr), flow: cell(tr, 'num'), total: cell(tr, 'num') },
      lastSeenMs: null,
      online: false,
      meter,
    };
    tbody.append(tr);
    rows.set(meter.id, entry);
  }
  entry.meter = meter;
  return entry;
}

function showReading(entry, reading) {
  entry.cells.flow.textContent = flowFormat.format(reading.flow);
  entry.cells.total.textContent = totalFormat.format(reading.total);
  entry.cells.flow.title = `at ${new Date(reading.ts).toLocaleString()}`;
}

function paintStatus(entry) {
  const { cells, meter, lastSeenMs } = entry;
  cells.online.textContent = entry.online ? 'online' : 'offline';
  cells.online.className = entry.online ? 'online' : 'offline';
  if (lastSeenMs === null) {
    cells.lastSeen.textContent = 'never';
    cells.lastSeen.className = 'stale';
    return;
  }
  const age = Date.now() - lastSeenMs;
  cells.lastSeen.textContent = ago(age);
  cells.lastSeen.title = new Date(lastSeenMs).toLocaleString();
  cells.lastSeen.className = age > STALE_AFTER_INTERVALS * meter.intervalSec * 1000 ? 'stale' : '';
}

async function loadPilot() {
  try {
    const response = await fetch('/api/v1/pilot');
    const body = await response.json();
    if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
    document.getElementById('pilot-name').textContent = body.name;
    document.title = `${body.name} · FlowPilot`;
    for (const meter of body.meters) {
      const entry = rowFor(meter);
      entry.cells.name.textContent = meter.id;
      entry.cells.label.textContent = meter.label ?? '';
      entry.cells.site.textContent = meter.site;
      entry.cells.role.textContent = meter.role;
      entry.online = meter.online;
      const seen = meter.lastSeen ? Date.parse(meter.lastSeen) : null;
      if (seen !== null && (entry.lastSeenMs === null || seen > entry.lastSeenMs)) entry.lastSeenMs = seen;
      if (meter.lastReading) showReading(entry, meter.lastReading);
      paintStatus(entry);
    }
    errorBox.hidden = true;
  } catch (error) {
    errorBox.textContent = `Could not load the pilot: ${error.message}`;
    errorBox.hidden = false;
  }
}

function listen() {
  const source = new EventSource('/api/v1/live');
  source.addEventListener('open', () => {
    feed.textContent = 'live';
    feed.className = 'up';
  });
  source.addEventListener('error', () => {
    // EventSource reconnects by itself; say so meanwhile.
    feed.textContent = 'reconnecting…';
    feed.className = 'down';
  });
  source.addEventListener('reading', (event) => {
    const reading = JSON.parse(event.data);
    const entry = rows.get(reading.meterId);
    if (!entry) return;
    showReading(entry, reading);
    entry.lastSeenMs = reading.receivedAt ? Date.parse(reading.receivedAt) : Date.now();
    entry.online = true; // it just sent a reading; the next pilot refresh brings its status message
    paintStatus(entry);
    entry.tr.classList.add('flash');
    requestAnimationFrame(() => requestAnimationFrame(() => entry.tr.classList.remove('flash')));
  });
}

await loadPilot();
listen();
setInterval(() => rows.forEach(paintStatus), 5_000);
setInterval(loadPilot, REFRESH_PILOT_MS);
