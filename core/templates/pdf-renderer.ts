// HTML → PDF through headless Chromium (the Debian `chromium` package, driven by playwright-core).
// One browser per renderer, launched on the first render and reused; every render gets its own
// context and page, closed afterwards. The page is sealed: JavaScript is off and every request but
// `data:` URLs is aborted, so a template can neither reach the network nor read local files.

import { accessSync, constants, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
// playwright-core takes half a second to import: loaded on the first PDF, not at every start.
import type { Browser, BrowserContext } from 'playwright-core';
import { KubikiError } from '../errors.ts';
import type { Logger } from '../logger.ts';

export type PaperFormat = 'A4' | 'A5' | 'Letter';

export interface PdfPage {
  paper: PaperFormat;
  landscape?: boolean;
}

export interface PdfRendererOptions {
  /** The Chromium binary; default `KUBIKI_CHROMIUM`, else `/usr/bin/chromium`. */
  executablePath?: string;
  logger?: Logger;
}

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * Belt and braces under the per-context route: Chromium issues some requests outside the page's
 * interception (`<link rel="prefetch">` goes out from the browser process), so every request it
 * makes at all goes to a proxy that cannot exist (`.invalid` never resolves, RFC 6761; Playwright
 * adds `<-loopback>` so 127.0.0.1/localhost are proxied too), and no host name resolves either.
 */
const NO_NETWORK = {
  proxy: { server: 'http://kubiki-pdf-no-network.invalid:9' },
  args: ['--host-resolver-rules=MAP * ~NOTFOUND'],
};

/** Pages rendered at once by one renderer; more wait their turn. */
const MAX_CONCURRENT_PAGES = 2;
/** Longest a single step (setContent, pdf) may take before the render fails. */
const STEP_TIMEOUT_MS = 30_000;

const UNAVAILABLE =
  'PDF needs Chromium: install it with "apt-get install -y chromium" (or set KUBIKI_CHROMIUM to its path); HTML output still works';

/** A counting semaphore: at most `limit` holders, the rest queue in order. */
class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    // The releaser hands its slot straight to us, so `active` stays as it is.
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

export class PdfRenderer {
  readonly executablePath: string;
  private readonly logger: Logger | undefined;
  private readonly pages = new Semaphore(MAX_CONCURRENT_PAGES);
  /** The running (or launching) browser; cleared when it disconnects, so the next render relaunches. */
  private browser: Promise<Browser> | undefined;

  constructor(options: PdfRendererOptions = {}) {
    this.executablePath = options.executablePath ?? process.env.KUBIKI_CHROMIUM ?? '/usr/bin/chromium';
    this.logger = options.logger?.child({ component: 'pdf' });
  }

  /** Whether the Chromium binary exists and is executable. */
  available(): boolean {
    try {
      if (!statSync(this.executablePath).isFile()) return false;
      accessSync(this.executablePath, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }

  /** Renders a complete HTML document to PDF bytes. Throws `pdf-unavailable` without Chromium. */
  async render(html: string, page: PdfPage): Promise<Buffer> {
    if (!this.available()) throw new KubikiError('pdf-unavailable', UNAVAILABLE, { extra: { executablePath: this.executablePath } });
    const browser = await this.launched();
    await this.pages.acquire();
    const started = performance.now();
    let context: BrowserContext | undefined;
    try {
      context = await browser.newContext({ javaScriptEnabled: false, serviceWorkers: 'block', acceptDownloads: false });
      // The document itself comes through setContent, not a request; anything it references
      // (images, stylesheets, fonts, frames, redirects) is a request and is refused unless inline.
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('data:')) return route.continue();
        this.logger?.debug({ url }, 'blocked a request from a PDF document');
        // ERR_ABORTED, not ERR_BLOCKED_BY_CLIENT: a refused navigation (<meta http-equiv="refresh">)
        // then leaves the document in place instead of committing an error page mid-print, which
        // made printToPDF fail ("Printing failed") about one render in eight.
        return route.abort('aborted');
      });
      const tab = await context.newPage();
      tab.setDefaultTimeout(STEP_TIMEOUT_MS);
      await tab.setContent(html, { waitUntil: 'load' });
      const pdf = await tab.pdf({ format: page.paper, landscape: page.landscape ?? false, printBackground: true, preferCSSPageSize: true });
      this.logger?.debug({ ms: Math.round(performance.now() - started), bytes: pdf.length, paper: page.paper }, 'rendered a PDF');
      return pdf;
    } finally {
      await context?.close().catch(() => undefined);
      this.pages.release();
    }
  }

  /** Closes the browser; safe to call any number of times (a later render launches a new one). */
  async close(): Promise<void> {
    const launching = this.browser;
    this.browser = undefined;
    if (!launching) return;
    const browser = await launching.catch(() => undefined);
    await browser?.close().catch(() => undefined);
  }

  /** The shared browser, launched on first use (once, even for concurrent callers). */
  private launched(): Promise<Browser> {
    const current = this.browser;
    if (current) return current;
    const started = performance.now();
    const launching = import('playwright-core')
      .then(({ chromium }) => chromium.launch({ executablePath: this.executablePath, headless: true, args: [...CHROMIUM_ARGS, ...NO_NETWORK.args], proxy: NO_NETWORK.proxy }))
      .then((browser) => {
        this.logger?.info({ ms: Math.round(performance.now() - started), version: browser.version() }, 'launched Chromium for PDF output');
        browser.on('disconnected', () => {
          if (this.browser !== launching) return; // closed on purpose
          this.browser = undefined;
          this.logger?.warn('Chromium for PDF output disconnected; the next render relaunches it');
        });
        return browser;
      })
      .catch((err: unknown) => {
        if (this.browser === launching) this.browser = undefined; // the next render tries again
        this.logger?.error({ err }, 'could not launch Chromium for PDF output');
        const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
        throw new KubikiError('pdf-unavailable', `${UNAVAILABLE} (Chromium at ${this.executablePath} did not start: ${reason})`, { cause: err });
      });
    this.browser = launching;
    return launching;
  }
}
