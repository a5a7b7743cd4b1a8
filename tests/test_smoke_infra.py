from tests.api import Api
from tests.factories import PASSWORD, World


async def test_login_and_list(api: Api, world: World) -> None:
    token = await api.login(world.provider.email, PASSWORD)
    await world.invoice(amount=500)
    data = await api.data(
        "{ invoices { totalCount edges { node { total { amount } } } } }", token=token
    )
    assert data["invoices"]["totalCount"] == 1
