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
    // Its own process group, so a timeout or shutdown reaches what a script started too (a shell
    // script's `sleep`, a `docker push`): killing only the shell would leave them running, holding
    // the output pipes open, and the step would wait for them however long they take.
    const child = spawn(t.command, t.args ?? [], { cwd: t.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // The group is gone already.
      }
    };
    const kill = () => {
      signalGroup('SIGTERM');
      setTimeout(() => signalGroup('SIGKILL'), 5000).unref();
    };
    const timer = setTimeout(() => { timedOut = true; kill(); }, timeoutMs);
    const onAbort = () => kill();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let done = false;
    let exitTimer: NodeJS.Timeout | undefined;
    const finish = (result: StepResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(exitTimer);
      ctx.signal.removeEventListener('abort', onAbort);
      if (output.length) ctx.log((truncated ? '[output truncated to the last 64 KiB]\n' : '') + output.toString('utf8'));
      resolve(result);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      finish({ kind: 'failed', error: err.code === 'ENOENT' ? `command not found: ${t.command}` : `cannot run ${t.command}: ${err.message}` });
    });
    const outcome = (code: number | null, signal: NodeJS.Signals | null): StepResult => {
      if (timedOut) return { kind: 'failed', error: `command did not finish within ${timeoutMs / 1000} s and was killed` };
      if (code === 0) return { kind: 'succeeded', message: 'command exited 0' };
      // The last line it printed usually says why (the whole output is in the log).
      const why = lastLine(output);
      if (code === EX_TEMPFAIL) return { kind: 'retry', error: `command exited ${EX_TEMPFAIL} (temporary failure)${why ? `: ${why}` : ''}` };
      return { kind: 'failed', error: (signal ? `command was killed by ${signal}` : `command exited ${code}`) + (why ? `: ${why}` : '') };
    };
    child.on('close', (code, signal) => finish(outcome(code, signal)));
    // A background process the command left behind (`nohup x &`) may hold the output pipes open
    // for good: once the command itself has exited, stop waiting for them after a moment.
    child.on('exit', (code, signal) => {
      exitTimer = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(outcome(code, signal));
      }, 2000);
    });
  });
}

function lastLine(output: Buffer): string {
  const lines = output.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines.at(-1) ?? '';
  return last.length > 200 ? last.slice(0, 200) + '…' : last;
}

export const commandProvider: Provider<CommandTarget> = {
  type: 'command',
  cancellable: false,
  start: run,
  // No recover(): a command that was running when its process died may have done part of its
  // work; running it again could deploy twice, so the scheduler fails it and says why.
};
