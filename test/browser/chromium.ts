/**
 * Which Chromium the browser tests drive, so that `npm ci && npm test` is the whole set-up:
 *
 * 1. `SHIPCLOCK_CHROMIUM`, a path to a Chromium binary, when set (a missing file is an error);
 * 2. a system Chromium (Debian's /usr/bin/chromium, or chromium-browser / google-chrome on PATH);
 * 3. the Chromium inside the `@sparticuz/chromium` devDependency: a brotli-compressed headless
 *    build shipped in the npm package itself (no download at install time), unpacked on first
 *    use into the system's temporary folder, with the few shared libraries it needs (NSS, NSPR,
 *    expat) unpacked beside it and put on its LD_LIBRARY_PATH, so that a machine without them
 *    (a bare Debian with only Node) runs it too.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ChromiumBinary {
  path: string;
  /** Where it came from, for messages. */
  source: 'SHIPCLOCK_CHROMIUM' | 'system' | '@sparticuz/chromium';
  /** Extra environment for the browser process (the packaged build's libraries). */
  env: Record<string, string>;
}

const SYSTEM_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* not here */ }
  }
  return undefined;
}

/** A system Chromium that actually starts (a leftover wrapper script without its binary does not count). */
function systemChromium(): string | undefined {
  for (const name of SYSTEM_NAMES) {
    const p = name === 'chromium' && fs.existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : onPath(name);
    if (!p) continue;
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore', timeout: 10_000 });
      return p;
    } catch { /* does not run: try the next */ }
  }
  return undefined;
}

async function packagedChromium(): Promise<ChromiumBinary> {
  let mod: typeof import('@sparticuz/chromium');
  try {
    mod = await import('@sparticuz/chromium');
  } catch (err) {
    throw new Error(
      'no Chromium for the browser tests: SHIPCLOCK_CHROMIUM is unset, no system Chromium was found, and the ' +
        `@sparticuz/chromium devDependency is not installed (run npm ci): ${(err as Error).message}`,
    );
  }
  const Chromium = mod.default;
  const exe = await Chromium.executablePath();
  // The package's own shared libraries (it unpacks them only on AWS Lambda by itself).
  const binDir = path.join(path.dirname(fileURLToPath(import.meta.resolve('@sparticuz/chromium'))), '..', 'bin');
  const libRoot = await mod.inflate(path.join(binDir, 'al2023.tar.br'));
  const libDir = path.join(libRoot, 'lib');
  const ld = [libDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  return { path: exe, source: '@sparticuz/chromium', env: { LD_LIBRARY_PATH: ld } };
}

let found: Promise<ChromiumBinary> | undefined;

/** The Chromium to drive, looked up once per process. */
export function findChromium(): Promise<ChromiumBinary> {
  found ??= (async () => {
    const fromEnv = process.env.SHIPCLOCK_CHROMIUM;
    if (fromEnv) {
      if (!fs.existsSync(fromEnv)) throw new Error(`SHIPCLOCK_CHROMIUM=${fromEnv}: no such file`);
      return { path: fromEnv, source: 'SHIPCLOCK_CHROMIUM', env: {} };
    }
    const sys = systemChromium();
    if (sys) return { path: sys, source: 'system', env: {} };
    return packagedChromium();
  })();
  return found;
}
