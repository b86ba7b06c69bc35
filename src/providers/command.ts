/**
 * `command` target: runs a program (no shell) with the deployment's details in its environment.
 * Exit 0 succeeds; exit 75 (EX_TEMPFAIL) is transient and retried per the app's policy; any other
 * exit fails. Output (stdout and stderr) is kept, capped at the last 64 KiB, as the log.
 *
 * The child gets a minimal environment — PATH, HOME, LANG, TZ and the SHIPCLOCK_* variables
 * below — never shipclock's own (which holds DATABASE_URL and SHIPCLOCK_SECRET_KEY).
 */
import { spawn } from 'node:child_process';
import type { Provider, ProviderContext, StepResult } from './types.ts';

export interface CommandTarget {
  type: 'command';
  command: string;
  args?: string[];
  cwd?: string;
  /** Default 600; the child gets SIGTERM, then SIGKILL 5 s later. */
  timeout_seconds?: number;
}

export const COMMAND_DEFAULT_TIMEOUT_SECONDS = 600;
export const COMMAND_OUTPUT_CAP_BYTES = 64 * 1024;
export const EX_TEMPFAIL = 75;

function run(ctx: ProviderContext<CommandTarget>): Promise<StepResult> {
  const t = ctx.target;
  const d = ctx.deployment;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    SHIPCLOCK_DEPLOYMENT_ID: d.id,
    SHIPCLOCK_APP: d.appName,
    SHIPCLOCK_APP_ID: d.appId,
    SHIPCLOCK_RUN_AT: d.runAt.toISOString(),
    SHIPCLOCK_ATTEMPT: String(d.attempt),
  };
  for (const k of ['HOME', 'LANG', 'TZ']) if (process.env[k]) env[k] = process.env[k]!;
  const timeoutMs = (t.timeout_seconds ?? COMMAND_DEFAULT_TIMEOUT_SECONDS) * 1000;
  return new Promise((resolve) => {
    let output = Buffer.alloc(0);
    let truncated = false;
    const keep = (chunk: Buffer) => {
      output = Buffer.concat([output, chunk]);
      if (output.length > COMMAND_OUTPUT_CAP_BYTES) {
        truncated = true;
        output = output.subarray(output.length - COMMAND_OUTPUT_CAP_BYTES);
      }
    };
    let timedOut = false;
    const child = spawn(t.command, t.args ?? [], { cwd: t.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const kill = () => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    };
    const timer = setTimeout(() => { timedOut = true; kill(); }, timeoutMs);
    const onAbort = () => kill();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const finish = (result: StepResult) => {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      if (output.length) ctx.log((truncated ? '[output truncated to the last 64 KiB]\n' : '') + output.toString('utf8'));
      resolve(result);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      finish({ kind: 'failed', error: err.code === 'ENOENT' ? `command not found: ${t.command}` : `cannot run ${t.command}: ${err.message}` });
    });
    child.on('close', (code, signal) => {
      if (timedOut) return finish({ kind: 'failed', error: `command did not finish within ${timeoutMs / 1000} s and was killed` });
      if (code === 0) return finish({ kind: 'succeeded', message: 'command exited 0' });
      if (code === EX_TEMPFAIL) return finish({ kind: 'retry', error: `command exited ${EX_TEMPFAIL} (temporary failure)` });
      finish({ kind: 'failed', error: signal ? `command was killed by ${signal}` : `command exited ${code}` });
    });
  });
}

export const commandProvider: Provider<CommandTarget> = {
  type: 'command',
  cancellable: false,
  start: run,
  // No recover(): a command that was running when its process died may have done part of its
  // work; running it again could deploy twice, so the scheduler fails it and says why.
};
