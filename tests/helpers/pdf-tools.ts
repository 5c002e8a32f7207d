import { spawnSync } from 'node:child_process';
import { PdfRenderer } from '../../core/templates/pdf-renderer.ts';

// PDF output needs Chromium (HTML → PDF) and the tests read PDFs back with pdftotext. A fresh
// machine may have neither: the README's test command then skips the PDF tests and says so, while
// .ci/run installs both and sets KUBIKI_TEST_REQUIRE_PDF=1, which turns the skip into a failure.

const INSTALL = 'apt-get install -y chromium poppler-utils';

function missingTools(): string[] {
  const missing: string[] = [];
  if (!new PdfRenderer().available()) missing.push('Chromium');
  if (spawnSync('pdftotext', ['-v']).error !== undefined) missing.push('pdftotext');
  return missing;
}

const missing = missingTools();
const required = process.env.KUBIKI_TEST_REQUIRE_PDF === '1';

/** True when the PDF tests should be skipped (tools missing and not required). */
export const skipPdf = missing.length > 0 && !required;

/** A suffix for describe names: says why the block is skipped and how to run it. */
export const pdfSkipNote = skipPdf ? ` — SKIPPED: ${missing.join(' and ')} not installed (${INSTALL})` : '';

if (skipPdf) process.stderr.write(`\n[kubiki tests] PDF tests skipped: ${missing.join(' and ')} not installed. Run \`${INSTALL}\` to include them.\n`);
