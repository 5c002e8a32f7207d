import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKubikiError } from '../../core/errors.ts';
import { PdfRenderer } from '../../core/templates/pdf-renderer.ts';
import { pdfSkipNote, skipPdf } from '../helpers/pdf-tools.ts';

// HTML → PDF through the Debian Chromium. One renderer (one browser) serves the whole file.
// Without Chromium or pdftotext the rendering tests skip (and say so), but fail on CI: .ci/run
// installs both and requires them (tests/helpers/pdf-tools.ts).

let dir: string;
let renderer: PdfRenderer;
let server: Server;
let port: number;
const served: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kubiki-pdf-'));
  renderer = new PdfRenderer();
  server = createServer((req, res) => {
    served.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' }).end('root:x:0:0:FETCHED');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await renderer?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The text of a PDF as pdftotext reads it, with every run of whitespace (NBSP, NNBSP too) made one space. */
async function pdfText(pdf: Buffer): Promise<string> {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.pdf`);
  await writeFile(file, pdf);
  const child = spawn('pdftotext', ['-enc', 'UTF-8', file, '-']);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  expect(code, Buffer.concat(err).toString()).toBe(0);
  return Buffer.concat(out).toString('utf8').replace(/[\s\u00a0\u202f\u2007\u2009]+/gu, ' ').trim();
}

const invoice = (number: string, extraBody = '', extraHead = ''): string => `<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Счёт ${number}</title>
<style>
  @page { size: A4; margin: 15mm; }
  body { font-family: "DejaVu Sans", "Liberation Sans", sans-serif; font-size: 11pt; }
  table { width: 100%; border-collapse: collapse; }
  td, th { border: 1px solid #999; padding: 4px; }
  th { background: #eee; }
  .total { text-align: right; font-weight: bold; }
</style>${extraHead}</head>
<body>
  <h1>Счёт на оплату № ${number}</h1>
  <p>Поставщик: ООО «Кубики», ИНН 7707083893</p>
  <p>Покупатель: АО «Ромашка»</p>
  <table>
    <tr><th>Наименование</th><th>Кол-во</th><th>Сумма</th></tr>
    <tr><td>Стол письменный</td><td>1</td><td>1&#8239;000,00&nbsp;₽</td></tr>
    <tr><td>Доставка</td><td>1</td><td>234,50&nbsp;₽</td></tr>
  </table>
  <p class="total">Итого: 1&#8239;234,50&nbsp;₽</p>
  ${extraBody}
</body></html>`;

describe.skipIf(skipPdf)(`PdfRenderer with Chromium${pdfSkipNote}`, () => {
  it('renders an A4 invoice with Cyrillic text to a PDF whose text can be read back', async () => {
    const pdf = await renderer.render(invoice('INV-2026-0042'), { paper: 'A4' });
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const text = await pdfText(pdf);
    expect(text).toContain('INV-2026-0042');
    expect(text).toContain('1 234,50 ₽');
    expect(text).toContain('Счёт на оплату');
    expect(text).toContain('ООО «Кубики»');
  });

  it('fetches nothing a document references: no network, no local files', async () => {
    const local = `http://127.0.0.1:${port}`;
    const hostile = invoice(
      'INV-2026-0043',
      `<img src="http://127.0.0.1:9/x.png"><img src="${local}/img.png"><img src="file:///etc/passwd">
       <iframe src="file:///etc/passwd"></iframe><iframe src="${local}/frame.html"></iframe>
       <object data="file:///etc/passwd" type="text/plain"></object>
       <div style="background: url(${local}/bg.png)">.</div>
       <img srcset="${local}/srcset.png 2x"><video poster="${local}/poster.png" src="${local}/video.mp4"></video>
       <audio src="${local}/audio.mp3" autoplay></audio><embed src="${local}/embed.pdf"><object data="${local}/object.html"></object>
       <svg><image href="${local}/svg.png" width="10" height="10"/></svg>
       <script>document.write('SCRIPT-RAN')</script>`,
      `<link rel="stylesheet" href="http://127.0.0.1:9/x.css"><link rel="stylesheet" href="${local}/style.css">
       <link rel="prefetch" href="${local}/prefetch"><link rel="prefetch" href="http://localhost:${port}/prefetch-by-name">
       <link rel="preload" as="image" href="${local}/preload.png"><link rel="preconnect" href="${local}">
       <link rel="dns-prefetch" href="//kubiki-test.invalid"><link rel="icon" href="${local}/favicon.ico"><meta http-equiv="refresh" content="0; url=${local}/refresh">
       <style>@import url("${local}/import.css"); @font-face { font-family: Remote; src: url(${local}/font.woff2); }
       h1 { font-family: Remote, sans-serif; }</style>`,
    );
    const pdf = await renderer.render(hostile, { paper: 'A4' });
    const text = await pdfText(pdf);
    await new Promise((resolve) => setTimeout(resolve, 250)); // a late prefetch would land by now
    expect(text).toContain('INV-2026-0043');
    expect(served).toEqual([]);
    expect(text).not.toMatch(/root:x?:?0:0|FETCHED/);
    expect(text).not.toContain('SCRIPT-RAN');
    const passwd = (await readFile('/etc/passwd', 'utf8')).split('\n')[0];
    if (passwd) expect(text).not.toContain(passwd.split(':')[0] + ':');
  });

  it('shows inline (data:) images', async () => {
    const pixel = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
    const pdf = await renderer.render(invoice('INV-LOGO', `<img src="${pixel}" width="40" height="40">`), { paper: 'A4' });
    expect(pdf.toString('latin1')).toMatch(/\/Subtype\s*\/Image/);
    const plain = await renderer.render(invoice('INV-NOLOGO'), { paper: 'A4' });
    expect(plain.toString('latin1')).not.toMatch(/\/Subtype\s*\/Image/);
  });

  it('renders other papers and orientations, several at once', async () => {
    const [a5, letter, landscape] = await Promise.all([
      renderer.render(invoice('INV-A5'), { paper: 'A5' }),
      renderer.render(invoice('INV-LETTER').replace('size: A4;', ''), { paper: 'Letter' }),
      renderer.render(invoice('INV-LANDSCAPE').replace('size: A4;', ''), { paper: 'A4', landscape: true }),
    ]);
    expect(await pdfText(a5)).toContain('INV-A5');
    expect(await pdfText(letter)).toContain('INV-LETTER');
    expect(await pdfText(landscape)).toContain('INV-LANDSCAPE');
    // The page box, in points: Letter is 612×792, landscape A4 is wider than tall.
    const box = (pdf: Buffer): number[] => {
      const m = /\/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]/.exec(pdf.toString('latin1'));
      return m ? [Number(m[3]) - Number(m[1]), Number(m[4]) - Number(m[2])] : [];
    };
    expect(box(letter).map(Math.round)).toEqual([612, 792]);
    const [w, h] = box(landscape);
    expect(w).toBeGreaterThan(h);
  });

  it('relaunches Chromium after it dies', async () => {
    await renderer.render(invoice('INV-BEFORE'), { paper: 'A4' });
    const pids = await chromiumChildren();
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await waitFor(async () => (await chromiumChildren()).every((pid) => !pids.includes(pid)));
    const pdf = await renderer.render(invoice('INV-AFTER'), { paper: 'A4' });
    expect(await pdfText(pdf)).toContain('INV-AFTER');
  });

  it('closes any number of times, and the browser is gone', async () => {
    expect((await chromiumChildren()).length).toBeGreaterThan(0);
    await Promise.all([renderer.close(), renderer.close()]);
    await renderer.close();
    await waitFor(async () => (await chromiumChildren()).length === 0);
  });
});

describe('PdfRenderer without Chromium', () => {
  it('reports unavailable and refuses to render with pdf-unavailable', async () => {
    const missing = new PdfRenderer({ executablePath: '/nonexistent/chromium' });
    expect(missing.available()).toBe(false);
    const err: unknown = await missing.render('<p>x</p>', { paper: 'A4' }).then(() => undefined, (e: unknown) => e);
    expect(isKubikiError(err)).toBe(true);
    if (!isKubikiError(err)) return;
    expect(err.code).toBe('pdf-unavailable');
    expect(err.status).toBe(406);
    expect(err.message).toMatch(/apt-get install -y chromium/);
    await missing.close();
  });

  it('is not available for a directory or a file that cannot be executed', () => {
    expect(new PdfRenderer({ executablePath: tmpdir() }).available()).toBe(false);
    expect(new PdfRenderer({ executablePath: '/etc/passwd' }).available()).toBe(false);
  });

  it('takes its default path from KUBIKI_CHROMIUM', () => {
    const saved = process.env.KUBIKI_CHROMIUM;
    process.env.KUBIKI_CHROMIUM = '/opt/elsewhere/chromium';
    try {
      expect(new PdfRenderer().executablePath).toBe('/opt/elsewhere/chromium');
    } finally {
      if (saved === undefined) delete process.env.KUBIKI_CHROMIUM;
      else process.env.KUBIKI_CHROMIUM = saved;
    }
  });

  it('closes any number of times without having launched', async () => {
    const unused = new PdfRenderer();
    await unused.close();
    await unused.close();
  });
});

/** Chromium processes this test process started (the browser; its helpers are its own children). */
async function chromiumChildren(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may contain spaces, so read past the last ')'.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && /chrom/i.test(comm)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
