/** The provider registry: target type → Provider. */
import { commandProvider } from './command.ts';
import type { Provider } from './types.ts';
import { webhookProvider } from './webhook.ts';

const registry = new Map<string, Provider<any>>([
  [webhookProvider.type, webhookProvider],
  [commandProvider.type, commandProvider],
]);

/** Registers a provider (the ecs and digitalocean providers register here when present). */
export function registerProvider(p: Provider<any>): void {
  registry.set(p.type, p);
}

export function providerFor(type: string): Provider<any> | undefined {
  return registry.get(type);
}
