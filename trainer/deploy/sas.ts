/**
 * A read-only, expiring SAS URL for one model blob, signed with the storage account key of the
 * trainer's connection string. The URL is a secret: it is put in the twin, never printed or logged
 * (messages show the blob name only).
 */
import { BlobSASPermissions, SASProtocol, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { safeErrorMessage } from '../../sync/redact.js';
import { TrainerError } from '../errors.js';

export const DEFAULT_SAS_HOURS = 24 * 7;

/** Throws unless the container's credential can sign URLs (an account key, not a SAS URL). */
export function checkCanSign(container: ContainerClient): void {
  if (!(container.credential instanceof StorageSharedKeyCredential)) {
    throw new TrainerError(
      'PW_TRAINER_NOT_CONFIGURED',
      'deploy signs model URLs with the storage account key: set PUMPWATCH_BLOB_CONNECTION_STRING with an AccountKey (a SAS URL cannot sign new URLs)',
    );
  }
}

/**
 * The URL signed for reading `blobName` until `expiresOn`. Over an https endpoint (Azure's), the
 * signature also names the protocol (`spr=https`): the storage service then refuses the URL over
 * plain HTTP, where the token would cross the network readable. An http endpoint (Azurite, a
 * development account) signs for both, as it could not be read otherwise.
 */
export async function readOnlyUrl(container: ContainerClient, blobName: string, expiresOn: Date): Promise<string> {
  checkCanSign(container);
  const protocol = new URL(container.url).protocol === 'https:' ? SASProtocol.Https : SASProtocol.HttpsAndHttp;
  try {
    return await container.getBlobClient(blobName).generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn, protocol });
  } catch (err) {
    throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `cannot sign a URL for ${blobName}: ${safeErrorMessage(err)}`, { cause: err });
  }
}
