import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import type { Logger } from '../observability/logger.ts';
import type { SecretBox } from '../secrets/box.ts';
import type { AuthService } from '../services/auth.ts';
import type { OidcService } from '../services/oidc.ts';
import type { TargetResolver } from '../services/deployments.ts';
import type { EventsHub } from './events-hub.ts';

/** What route handlers may use. */
export interface ApiContext {
  config: Config;
  pool: Pool;
  box: SecretBox;
  auth: AuthService;
  hub: EventsHub;
  logger: Logger;
  resolveTarget: TargetResolver;
  /** Single sign-on, when SHIPCLOCK_OIDC_ISSUER is set. */
  oidc?: OidcService;
  /** 'serve' has the whole API and UI; 'worker' only health, readiness and metrics. */
  role: 'serve' | 'worker';
}
