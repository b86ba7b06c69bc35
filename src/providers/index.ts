/** The provider registry: target type → Provider. */
import { commandProvider } from './command.ts';
import { digitaloceanProvider } from './digitalocean.ts';
import { ecsProvider } from './ecs.ts';
import { githubActionsProvider } from './github-actions.ts';
import { kubernetesProvider } from './kubernetes.ts';
import type { Provider } from './types.ts';
import { webhookProvider } from './webhook.ts';

const registry = new Map<string, Provider<any>>(
  [webhookProvider, commandProvider, ecsProvider, digitaloceanProvider, githubActionsProvider, kubernetesProvider].map((p) => [p.type, p as Provider<any>]),
);

/** Registers a provider (tests use it for stand-ins). */
export function registerProvider(p: Provider<any>): void {
  registry.set(p.type, p);
}

export function providerFor(type: string): Provider<any> | undefined {
  return registry.get(type);
}
