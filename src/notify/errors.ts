import { createError } from '../errors.ts';

/** A receiver answered with a status a retry cannot change (4xx other than 408/429): the message is dropped. */
export const ERR_NOTIFY_REJECTED = createError(
  'PF_ERR_NOTIFY_REJECTED',
  (receiver: string, status: number) => `${receiver} refused the notification with HTTP ${status}; expected 2xx — check the webhook URL in watch.folders[].notify`,
);
/** No 2xx after every retry: the message is dropped. */
export const ERR_NOTIFY_GAVE_UP = createError(
  'PF_ERR_NOTIFY_GAVE_UP',
  (receiver: string, attempts: number, last: string) => `${receiver} did not accept the notification after ${attempts} attempts (last: ${last}); expected 2xx — message dropped`,
);
